"""HTTP to the business's own systems, on the Twisted reactor (treq): the client scripts and the outbox use."""
