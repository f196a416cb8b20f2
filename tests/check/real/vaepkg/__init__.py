"""A package whose loss module uses relative imports."""

from .losses import vae_loss

__all__ = ["vae_loss"]
