"""Sign-in: passwords, single sign-on (OpenID Connect), passkeys (WebAuthn), browser sessions,
API tokens, CSRF and the permission guard."""
