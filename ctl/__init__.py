"""regsyncctl: thin gRPC client for people and scripts."""
