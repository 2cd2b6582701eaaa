"""Services own the rules and the transactions; blueprints only translate HTTP."""
