"""Planning: FLOP counts, the IsoFLOP fit and the recommendation `mia-plan` prints."""
