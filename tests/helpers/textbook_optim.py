"""Textbook twins of the optimizers, as PyTorch documents their rules, one float64 number at a time,
and the plain one- and many-parameter layers whose gradients the optimizer tests set directly
(tests/optim/)."""

import numpy as np


class Param:
    """A one-parameter plain layer whose gradient the test sets directly."""

    def __init__(self, value, dtype=np.float64):
        self.parameters = [np.array([value], dtype=dtype)]
        self.parameters_deltas = [np.zeros(1, dtype=dtype)]

    def forward(self, x, *args):
        return x

    def backward(self, delta):
        return delta

    def run(self, optimizer, gradients):
        values = []
        for g in gradients:
            self.parameters_deltas[0][0] = g
            optimizer.step()
            values.append(float(self.parameters[0][0]))
        return values


def textbook_adam(start, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Adam exactly as the paper writes it, one float64 number at a time: the reference twin."""
    beta1, beta2 = betas
    p = [float(value) for value in np.ravel(start)]
    m, v = [0.0] * len(p), [0.0] * len(p)
    for t, grad in enumerate(grads, start=1):
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat, v_hat = m[i] / (1 - beta1**t), v[i] / (1 - beta2**t)
            p[i] -= lr * m_hat / (v_hat**0.5 + eps)
    return np.reshape(p, np.shape(start))


def textbook_sgd(start, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """SGD as PyTorch documents it, one float64 number at a time: the reference twin."""
    p = [float(value) for value in np.ravel(start)]
    v = [0.0] * len(p)
    for grad in grads:
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            v[i] = momentum * v[i] + g
            step = g + momentum * v[i] if nesterov else (v[i] if momentum else g)
            p[i] -= lr * step
    return np.reshape(p, np.shape(start))


class Params:
    """Several parameters of different shapes (they share the optimizer's scratch memory)."""

    def __init__(self, starts, dtype):
        self.parameters = [np.array(start, dtype=dtype) for start in starts]
        self.parameters_deltas = [np.zeros_like(p) for p in self.parameters]


# -- textbook twins: the rules as PyTorch documents them, one float64 number at a time ---------
def textbook_rmsprop(start, grads, lr, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0, centered=False):
    p = [float(value) for value in np.ravel(start)]
    v, b, a = [0.0] * len(p), [0.0] * len(p), [0.0] * len(p)
    for grad in grads:
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            square = v[i]
            if centered:
                a[i] = alpha * a[i] + (1 - alpha) * g
                square = v[i] - a[i] * a[i]
            u = g / (square**0.5 + eps)
            if momentum:
                b[i] = momentum * b[i] + u
                u = b[i]
            p[i] -= lr * u
    return np.reshape(p, np.shape(start))


def textbook_adagrad(start, grads, lr, eps=1e-10, weight_decay=0.0):
    p = [float(value) for value in np.ravel(start)]
    total = [0.0] * len(p)
    for grad in grads:
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            total[i] += g * g
            p[i] -= lr * g / (total[i] ** 0.5 + eps)
    return np.reshape(p, np.shape(start))


def textbook_adamw(start, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    beta1, beta2 = betas
    p = [float(value) for value in np.ravel(start)]
    m, v = [0.0] * len(p), [0.0] * len(p)
    for t, grad in enumerate(grads, start=1):
        for i, g in enumerate(np.ravel(grad)):
            g = float(g)
            p[i] *= 1 - lr * weight_decay
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat, v_hat = m[i] / (1 - beta1**t), v[i] / (1 - beta2**t)
            p[i] -= lr * m_hat / (v_hat**0.5 + eps)
    return np.reshape(p, np.shape(start))
