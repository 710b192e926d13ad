"""Vision (V): the convolutional VAE that compresses a 64x64 frame into a 32-d latent."""
