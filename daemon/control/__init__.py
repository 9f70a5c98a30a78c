"""The control layer behind the API: `ControlPlane` (the contract the servicers call)
and `Control`, one method per operation, domain values in and out, no gRPC types.
"""
