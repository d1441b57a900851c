"""Tables of the paper built from raw results (one module per experiment); no computation here."""
