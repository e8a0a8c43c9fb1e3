"""Production evidence for the review: traffic snapshots imported into DVC, and their replay."""
