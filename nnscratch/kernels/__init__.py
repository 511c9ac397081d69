"""The machinery behind the fast layers, kept out of ``layers/`` so the layers stay readable.

- ``aligned.py``    64-byte aligned arrays: parameters, deltas, optimizer state, work buffers
- ``buffers.py``    result arrays recycled once dropped; arrays laid out in a given memory order
- ``conv_plan.py``  ``ConvPlan``: a convolution as one matrix product (im2col / col2im) and its buffers
- ``pool.py``       the max-pooling passes
- ``heap.py``       freed memory handed back to the system after a large inference (glibc's malloc_trim)
- ``channels.py``   the batch norms' per-channel views of (N, D), (N, C, L), (N, C, H, W) and their sums

What the fast layers compute is what their textbook twins in ``nnscratch.reference`` compute.
"""
