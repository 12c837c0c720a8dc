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
