"""Sign-in: passwords, browser sessions, API tokens, CSRF and the permission guard."""
