"""Kubernetes admission from the pre-verified catalog: an ``admission.k8s.io/v1``
AdmissionReview in, each container image judged by the gate, the review's answer out (denials,
warnings, JSONPatch pins). The HTTPS listener (``catalog.api.admission``) and
``xregistry admission review`` share :class:`Admission`::

    admission = Admission(gate, settings, KubernetesLabels(settings.namespace_labels))
    answer = await admission.review(body, budget=10.0, mutate=True)
"""

from catalog.admission.images import ImageSite, image_sites
from catalog.admission.namespaces import KnownLabels, KubernetesLabels, LabelSource
from catalog.admission.review import ReviewError, parse_review
from catalog.admission.service import Admission, pinned

__all__ = [
    "Admission",
    "ImageSite",
    "KnownLabels",
    "KubernetesLabels",
    "LabelSource",
    "ReviewError",
    "image_sites",
    "parse_review",
    "pinned",
]
