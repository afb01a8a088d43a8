"""The product's settings, with the bench URLs on top (product URLs + baseline)."""

from dunning.settings import *  # noqa: F403

ROOT_URLCONF = "benchapp.urls"
