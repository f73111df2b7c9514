"""inferops drift loop: detectors, readers, reports, remediation and the ``python -m drift`` CLI.

The detection core is importable without the CLI::

    from drift.detect import DetectConfig, detect, load_detect_config
    from drift.model import DriftReport
"""
