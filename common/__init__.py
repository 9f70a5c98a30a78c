"""Pure helpers the clients share (regsyncctl and the panel); no daemon, gRPC or NiceGUI here, so
either can import it without the other's weight."""
