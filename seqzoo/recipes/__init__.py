"""Recipes: end-to-end tasks with published results (`seqzoo recipe ...`).

`g2p`: grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary.
"""
