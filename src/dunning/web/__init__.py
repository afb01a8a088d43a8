"""The public pages a customer reaches from a message: pay and unsubscribe."""
