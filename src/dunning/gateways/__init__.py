"""Payment gateways: the charge contract, its adapters, and the Stripe webhook edge."""
