"""WebShop (Yao et al., 2022) as ``leap/WebShop-v0``: text pages, BM25 search, the original reward, privileged
state.

Modules: ``env`` (the Gymnasium env), ``pages`` (page text and clickables), ``search`` (BM25 index),
``reward`` (the original reward), ``catalog`` and ``vocab`` (the procedural catalog), ``data`` (the original's
data files), ``expert`` (the privileged expert's plan), ``leap_compat`` (LEAP's candidate format, optional).
"""
