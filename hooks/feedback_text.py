"""The survey page's own words, per locale (the reasons' labels live in reasons.toml).

Every locale has every key; a test checks it.
"""

from __future__ import annotations

from unicodedata import category

from werkzeug.datastructures import LanguageAccept

from worker.locales import normalize_locale

COMMENT_MAX = 2000

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your feedback",
        "heading": "Thank you for taking a moment",
        "intro": "Your answer goes straight to the people who run {site}. We read every one.",
        "legend": "What was the main reason you cancelled?",
        "comment_label": "Anything you would like to add? (optional)",
        "comment_hint": "Up to {max} characters.",
        "no_email": "Please don't email me again.",
        "send": "Send",
        "confirm": "Confirm",
        "clicked": "You chose “{reason}”. Press Confirm to send it.",
        "noted": "Noted: “{reason}”. Thank you. If you like, add a comment or tick the box "
        "below and press Send.",
        "thanks_title": "Thank you",
        "thanks_heading": "Thank you, truly.",
        "thanks_body": "We have your answer. It helps us make {site} better.",
        "thanks_no_email": "We won't email you again.",
        "thanks_change": "If you think of something else, the link in our email still works.",
        "error_title": "Something went wrong",
        "bad_link": "This link is not valid. Please use the link from our email as it is.",
        "expired_link": "This link has expired. Thank you all the same.",
        "gone": "This survey is no longer open. Thank you all the same.",
        "unknown_reason": "We don't know that reason. Please pick one from the list.",
        "too_long": "Please keep your comment under {max} characters.",
        "empty": "Please pick a reason, write a comment or tick the box.",
        "expired_form": "This form has expired. Please open the link from our email again.",
        "unavailable": "We can't save answers right now. Please try again in a few minutes.",
        "sample": (
            "This is a sample survey, linked from a test email: what you send here is not "
            "recorded. Members get their own link."
        ),
    },
    "pt_BR": {
        "title": "Sua opinião",
        "heading": "Obrigado por dedicar um momento",
        "intro": "Sua resposta vai direto para quem cuida de {site}. Lemos todas.",
        "legend": "Qual foi o principal motivo do cancelamento?",
        "comment_label": "Quer acrescentar algo? (opcional)",
        "comment_hint": "Até {max} caracteres.",
        "no_email": "Por favor, não me enviem mais e-mails.",
        "send": "Enviar",
        "confirm": "Confirmar",
        "clicked": "Você escolheu “{reason}”. Clique em Confirmar para enviar.",
        "noted": "Anotado: “{reason}”. Obrigado. Se quiser, escreva um comentário ou marque "
        "a caixa abaixo e clique em Enviar.",
        "thanks_title": "Obrigado",
        "thanks_heading": "Muito obrigado, de verdade.",
        "thanks_body": "Recebemos sua resposta. Ela nos ajuda a melhorar {site}.",
        "thanks_no_email": "Não enviaremos mais e-mails para você.",
        "thanks_change": "Se lembrar de algo mais, o link do nosso e-mail continua valendo.",
        "error_title": "Algo deu errado",
        "bad_link": "Este link não é válido. Use o link do nosso e-mail exatamente como veio.",
        "expired_link": "Este link expirou. Obrigado mesmo assim.",
        "gone": "Esta pesquisa não está mais aberta. Obrigado mesmo assim.",
        "unknown_reason": "Não conhecemos esse motivo. Escolha um da lista, por favor.",
        "too_long": "Por favor, escreva no máximo {max} caracteres.",
        "empty": "Escolha um motivo, escreva um comentário ou marque a caixa, por favor.",
        "expired_form": "Este formulário expirou. Abra de novo o link do nosso e-mail, por favor.",
        "unavailable": "Não conseguimos salvar respostas agora. Tente de novo em alguns minutos.",
        "sample": (
            "Esta é uma pesquisa de exemplo, de um e-mail de teste: o que você enviar aqui não "
            "é registrado. Cada assinante recebe o próprio link."
        ),
    },
}


def clean_comment(text: str) -> str:
    """Keep what a person typed, minus control characters (terminal escapes and the like)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or category(ch) != "Cc").strip()


def text_for(locale: str) -> dict[str, str]:
    return TEXT.get(locale) or TEXT["en"]


def locale_from(accept: LanguageAccept, default: str = "en") -> str:
    """For pages reached without a valid token: the browser's language, if we have it."""
    return normalize_locale(accept.best_match(["en", "pt-BR", "pt"], default="")) or default
