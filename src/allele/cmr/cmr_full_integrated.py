"""The design documents' ``models.cmr_full_integrated`` module: ``FullCMRModel`` and its
configuration, under the name the documents import them by."""

from allele.cmr.config import CMRConfig, GPTConfig
from allele.cmr.model import FullCMRModel

__all__ = ["CMRConfig", "FullCMRModel", "GPTConfig"]
