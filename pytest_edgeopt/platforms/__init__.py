"""Platform profiles and the transports that carry jobs to where the model runs."""
