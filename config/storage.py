"""Static files for production: WhiteNoise's compressed, hashed storage, minus source maps.

Django rewrites ``sourceMappingURL`` comments to hashed names and fails ``collectstatic`` when
the map is missing. Vendored minified files (Chart.js) name maps that are not shipped, so those
comments are left as they are (a browser fetches a map only with its developer tools open).
"""

from django.contrib.staticfiles.storage import HashedFilesMixin
from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns: tuple) -> tuple:
    kept = []
    for extension, rules in patterns:
        rules = tuple(rule for rule in rules if "sourceMappingURL" not in str(rule))
        if rules:
            kept.append((extension, rules))
    return tuple(kept)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = _without_source_maps(HashedFilesMixin.patterns)
