"""Keep AutoGraph out of library code: Keras 2 (``tf_keras``) and TF Transform.

AutoGraph rewrites the Python of every function a ``tf.function`` calls,
except modules its rules exclude. TensorFlow 2.16's rules exclude ``keras``
and ``tensorflow`` but not ``tf_keras``, the package Keras 2 now lives in, nor
``tensorflow_transform``: the first ``model.fit`` of a process spent about 18 s
rewriting Keras' own training loop (measured in docs/performance.md). These
libraries run in graph mode as written, as they did when Keras 2 was ``keras``.
"""

from __future__ import annotations

LIBRARIES = ("tf_keras", "tensorflow_transform")


def skip_library_code() -> None:
    """Add a do-not-convert rule for each library in ``LIBRARIES`` (once per process)."""
    from tensorflow.python.autograph.core import config

    rules = tuple(config.CONVERSION_RULES)
    missing = tuple(
        config.DoNotConvert(name)
        for name in LIBRARIES
        if not any(isinstance(rule, config.DoNotConvert) and rule.matches(name) for rule in rules)
    )
    config.CONVERSION_RULES = missing + rules
