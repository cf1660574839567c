"""psamf: Personality-Sentiment Aligned Multi-Level Fusion for multimodal sentiment analysis."""

__version__ = "0.1.0"
