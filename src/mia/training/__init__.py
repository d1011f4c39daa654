"""Training: the LightningModule around the decoder, its optimizer, schedule and callbacks."""
