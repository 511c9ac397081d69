"""The machinery behind the fast layers, kept out of ``layers/`` so the layers stay readable.

- ``aligned.py``    64-byte aligned arrays: parameters, deltas, optimizer state, work arrays
- ``recycle.py``    result arrays recycled once dropped; arrays laid out in a given memory order
- ``memory.py``     what a layer keeps between calls, and the release of it (``release_memory``)
- ``heap.py``       freed memory handed back to the system after a large inference (glibc's malloc_trim)
- ``conv_plan.py``  ``ConvPlan``: a convolution as one matrix product (im2col / col2im) and its work arrays
- ``pool.py``       the max-pooling passes
- ``channels.py``   the batch norms' per-channel views of (N, D), (N, C, L), (N, C, H, W) and their sums
- ``recurrent.py``  the loops over time of RNN, LSTM and GRU: per step one product with W_hh and the gates
- ``attention.py``  attention's head views, masks, in-place softmax (weights transposed) and the work
                    between its projections, a block of sequences at a time
- ``rows.py``       ``by_rows``, ``scratch``: element-wise work in cache-sized blocks of rows
- ``gelu.py``       GELU's forward and backward in place, through ``by_rows``

What the fast layers compute is what their textbook twins in ``nnscratch.reference`` compute.
"""
