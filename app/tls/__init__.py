"""TLS material: certificate store with SNI selection, self-signed certificates, ACME."""
