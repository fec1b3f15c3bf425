"""The outbox: ``notify`` and the product's events, stored first, then delivered in the background."""
