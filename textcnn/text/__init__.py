"""Text data: corpora, splits, tokenizers and word vectors."""
