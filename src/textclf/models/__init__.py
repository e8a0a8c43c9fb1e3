"""Models: backbone loading, the Lightning DataModule and LightningModule, torch inference."""
