"""Building blocks shared by the pages: the frame, confirmations, live updates."""
