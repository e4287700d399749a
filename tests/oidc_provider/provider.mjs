// A real OpenID provider for the browser tests: the certified `oidc-provider` package on a free
// loopback port. Usage: node provider.mjs '<client JSON>'; prints {"issuer": ...} once listening.
// Anyone may sign in with any name (the package's development login page): the account's
// subject, employee number and name are that name, its e-mail address <name>@example.com.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer } from "node:http";

import Provider from "oidc-provider";

const client = JSON.parse(process.argv[2]);
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "test-key", alg: "RS256", use: "sig" };

const server = createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
        ...client,
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    pkce: { required: () => true },
    claims: {
      openid: ["sub"],
      profile: ["name", "employee_no"],
      email: ["email", "email_verified"],
    },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, name: `Test ${id}`, employee_no: id, email: `${id}@example.com`, email_verified: true };
        },
      };
    },
  });
  server.on("request", provider.callback());
  process.stdout.write(JSON.stringify({ issuer }) + "\n");
});

process.on("SIGTERM", () => server.close(() => process.exit(0)));
