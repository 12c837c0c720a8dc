from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers


class JapaneseFirstLocaleMiddleware:
    """Japanese unless the visitor chose English with the language switcher.

    Django's LocaleMiddleware would follow the browser's Accept-Language. The platform is a
    Japanese public service whose pages are written in Japanese first, so a browser that merely
    happens to be set to English still lands on them; the switcher (a cookie) is one click away.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        try:
            language = translation.get_supported_language_variant(chosen) if chosen else None
        except LookupError:
            language = None
        translation.activate(language or settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        patch_vary_headers(response, ["Cookie"])
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


class ClientAddressMiddleware:
    """The donor's address, not the proxy's, in ``REMOTE_ADDR`` behind ``TRUSTED_PROXY_COUNT``
    proxies.

    Rate limits (ours and allauth's) and the request log read ``REMOTE_ADDR``. Behind a load
    balancer that is the balancer, so every visitor would share one limit. Each trusted proxy
    appends the address it saw to ``X-Forwarded-For``; the entry the outermost trusted proxy
    appended is the client as far as we can know it. Entries to its left were sent by the
    client and could be anything, so they are never used. A request carrying fewer entries
    than there are proxies did not come through them, and keeps its own ``REMOTE_ADDR``.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.proxies = settings.TRUSTED_PROXY_COUNT

    def __call__(self, request):
        if self.proxies:
            forwarded = [
                part.strip()
                for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                if part.strip()
            ]
            if len(forwarded) >= self.proxies:
                request.META["REMOTE_ADDR"] = forwarded[-self.proxies]
        return self.get_response(request)
