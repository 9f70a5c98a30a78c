"""The integration test bed: real registries, a token service, synthetic images, a proxy.

    registry.RegistryServer     docker-registry 2.8.2 process (anonymous | basic | token)
    tokenservice.TokenService   ES256 JWT issuer the registry trusts (token mode)
    images                      independent sync pusher: push_image, push_index, build_corpus
    proxy.CountingProxy         forwards to a registry, counts requests, injects faults
    certs                       self-signed certificates (TLS registry, token signer)
    syncrun                     seed-format configs for test registries, and an in-process run

Everything but `syncrun` is deliberately independent of the code under test (plain
httpx.Client, no regsync imports), so a bug in regsync cannot hide itself in its own test
fixtures; `syncrun` only drives regsync's engine, it checks nothing.
"""
