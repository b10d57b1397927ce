"""optviz: make first-order optimization visible."""
