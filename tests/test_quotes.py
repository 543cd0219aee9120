"""Quote stripping: a table of real-looking replies, each with the exact text kept."""
from email import message_from_bytes, policy
from textwrap import dedent

import pytest

from mailgate.mail.quotes import SEPARATOR, strip_quoted
from tests.conftest import CORPUS

SIG = "--\x20"  # the signature line "-- ", written so no editor trims its space
SEP_EN = "##- Please type your reply above this line -##"
SEP_FA = "##- لطفاً پاسخ خود را بالای این خط بنویسید -##"
SEP_KA = "##- გთხოვთ, პასუხი ამ ხაზის ზემოთ დაწეროთ -##"


def mail(text: str) -> str:
    return dedent(text).lstrip("\n")


CASES = [
    # -- (1) our own separator line ------------------------------------------
    pytest.param(mail(f"""
        Thanks, the printer works again.

        On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example> wrote:

        > {SEP_EN}
        >
        > Your request [MG#100327] has been updated.
        """), "Thanks, the printer works again.", id="separator-en-gmail"),
    pytest.param(mail(f"""
        Thanks, that did it.

        Jane

        ________________________________
        From: ACME Support <support@acme.example>
        Sent: Monday, January 5, 2026 10:00 AM
        To: Jane Doe <jane@example.org>
        Subject: [MG#100327] Printer

        {SEP_EN}

        Your request has been updated.
        """), "Thanks, that did it.\n\nJane", id="separator-en-outlook-header-above-it"),
    pytest.param(mail(f"""
        سلام،
        چاپگر دوباره کار می‌کند. ممنون از راهنمایی شما.

        \u202bدر تاریخ دوشنبه ۱۵ دی ۱۴۰۴ ساعت ۱۰:۰۰ پشتیبانی ACME <\u202asupport@acme.example\u202c> نوشت:\u202c

        > {SEP_FA}
        >
        > درخواست شما [MG#100327] به‌روزرسانی شد.
        """), "سلام،\nچاپگر دوباره کار می‌کند. ممنون از راهنمایی شما.", id="separator-fa-gmail-rtl-marks"),
    pytest.param(mail(f"""
        گزارش خطا پیوست شد.

        \u200f{SEP_FA}
        درخواست شما به‌روزرسانی شد.
        """), "گزارش خطا پیوست شد.", id="separator-fa-unquoted-with-rlm"),
    pytest.param(mail(f"""
        გამარჯობა, პრინტერი ისევ მუშაობს. გმადლობთ!

        ორშ, 5 იან. 2026, 10:00-ზე ACME Support <support@acme.example> წერს:

        > {SEP_KA}
        > თქვენი მოთხოვნა განახლდა.
        """), "გამარჯობა, პრინტერი ისევ მუშაობს. გმადლობთ!", id="separator-ka-gmail"),
    pytest.param(mail(f"""
        Grazie, adesso funziona.

        Il giorno lun 5 gen 2026 alle ore 10:00 ACME Support <support@acme.example> ha scritto:

        > {SEP_EN}
        > Your request has been updated.
        """), "Grazie, adesso funziona.", id="separator-unknown-language-attribution"),
    pytest.param(mail(f"""
        Ticket can be closed.

        {SIG}
        Jane Doe
        Example Ltd.

        {SEP_EN}
        Your request has been updated.
        """), "Ticket can be closed.", id="separator-with-signature-above"),
    pytest.param(mail(f"""
        On 05.01.2026 10:00, ACME Support wrote:
        > {SEP_EN}
        > Could you send us the serial number?

        Here is the serial number: CN-4711-XY.
        """), "Here is the serial number: CN-4711-XY.", id="separator-bottom-posted-answer"),
    pytest.param(mail(f"""
        > {SEP_EN}
        > Your request has been updated.
        """), f"> {SEP_EN}\n> Your request has been updated.", id="separator-nothing-typed-returns-original"),

    # -- (2) Gmail attribution lines -------------------------------------------
    pytest.param(mail("""
        Hi,

        yes, it is the HP LaserJet on the second floor.

        Best,
        Jane

        On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example> wrote:

        > Which printer is it?
        >
        > ACME Support
        """), "Hi,\n\nyes, it is the HP LaserJet on the second floor.\n\nBest,\nJane", id="gmail-en"),
    pytest.param(mail("""
        Works now, thanks.

        On Mon, Jan 5, 2026 at 10:00 AM ACME Customer Support Team <
        support@acme.example> wrote:

        > Please restart the printer.
        """), "Works now, thanks.", id="gmail-en-wrapped-attribution"),
    pytest.param(mail("""
        Works now, thanks.

        On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example>
        wrote:

        Please restart the printer. (Gmail Inbox did not quote this.)
        """), "Works now, thanks.", id="gmail-en-unquoted-history"),
    pytest.param(mail("""
        Hallo,

        der Drucker läuft wieder. Danke!

        Am Mo., 5. Jan. 2026 um 10:00 Uhr schrieb ACME Kundenservice Team <
        support@acme.example>:

        > Bitte starten Sie den Drucker neu.
        """), "Hallo,\n\nder Drucker läuft wieder. Danke!", id="gmail-de-wrapped"),
    pytest.param(mail("""
        Bonjour,

        l'imprimante fonctionne de nouveau.

        Le lun. 5 janv. 2026 à 10:00, ACME Support <support@acme.example> a écrit\u00a0:

        > Veuillez redémarrer l'imprimante.
        """), "Bonjour,\n\nl'imprimante fonctionne de nouveau.", id="gmail-fr-nbsp-before-colon"),
    pytest.param(mail("""
        Hola, ya funciona. ¡Gracias!

        El lun, 5 ene 2026 a las 10:00, ACME Support (<support@acme.example>) escribió:

        > Por favor, reinicie la impresora.
        """), "Hola, ya funciona. ¡Gracias!", id="gmail-es"),
    pytest.param(mail("""
        Спасибо, принтер заработал.

        пн, 5 янв. 2026 г. в 10:00, Служба поддержки ACME <support@acme.example>:

        > Перезапустите, пожалуйста, принтер.
        """), "Спасибо, принтер заработал.", id="gmail-ru-verbless"),
    pytest.param(mail("""
        Спасибо, всё работает.

        Понедельник, 5 января 2026, 10:00 +03:00 от Служба поддержки <support@acme.example>:

        > Перезапустите принтер.
        """), "Спасибо, всё работает.", id="mailru-ru-verbless"),
    pytest.param(mail("""
        Добрый день!
        Серийный номер: CN-4711-XY.

        05.01.2026 10:00, Служба поддержки ACME пишет:
        > Пришлите, пожалуйста, серийный номер.
        """), "Добрый день!\nСерийный номер: CN-4711-XY.", id="thunderbird-ru-pishet"),
    pytest.param(mail("""
        Проблема решена.

        05.01.2026 10:00, Служба поддержки ACME написал(а):

        > Перезапустите принтер.
        """), "Проблема решена.", id="ru-napisal-a"),
    pytest.param(mail("""
        Привет,
        всё работает.
        02.04.2026 14:20 пользователь "Служба поддержки" <
        support@acme.example> написал:

        > Перезапустите принтер.
        """), "Привет,\nвсё работает.", id="android-ru-wrapped-right-below-text"),
    pytest.param(mail("""
        ممنون، مشکل حل شد.

        در تاریخ ۱۴۰۵/۰۸/۲۰، علی رضایی <ali@example.ir> نوشت:
        > لطفاً شماره سریال دستگاه را بفرستید.
        >
        > با احترام
        """), "ممنون، مشکل حل شد.", id="fa-dar-tarikh-neveshte"),
    pytest.param(mail("""
        شماره سریال: CN-4711-XY
        با تشکر

        در ۱۴۰۴/۱۰/۱۵ ساعت ۱۰:۰۰، مریم احمدی نوشت:

        > شماره سریال چاپگر چیست؟
        """), "شماره سریال: CN-4711-XY\nبا تشکر", id="fa-thunderbird-no-address"),
    pytest.param(mail("""
        პრობლემა მოგვარდა, მადლობა.

        2026-01-05 10:00-ზე გიორგი ბერიძე დაწერა:
        > გთხოვთ, გადატვირთოთ პრინტერი.
        """), "პრობლემა მოგვარდა, მადლობა.", id="ka-dawera"),

    # -- Apple Mail and Thunderbird ----------------------------------------------
    pytest.param(mail("""
        Will do.

        On 5 Jan 2026, at 10:00, ACME Support <support@acme.example> wrote:

        > Please restart the printer.
        """), "Will do.", id="apple-mail-en"),
    pytest.param(mail("""
        Done, thanks!

        Sent from my iPhone

        > On 5 Jan 2026, at 10:00, ACME Support <support@acme.example> wrote:
        >\x20
        > Please restart the printer.
        """), "Done, thanks!", id="apple-ios-quoted-attribution-and-footer"),
    pytest.param(mail("""
        Erledigt.

        Von meinem iPhone gesendet

        > Am 05.01.2026 um 10:00 schrieb ACME Support <support@acme.example>:
        >\x20
        > Bitte starten Sie den Drucker neu.
        """), "Erledigt.", id="apple-ios-de"),
    pytest.param(mail("""
        Attached is the log file.

        On 1/5/26 10:00 AM, ACME Support wrote:
        > Could you send us the log file?
        >
        > ACME Support
        """), "Attached is the log file.", id="thunderbird-en"),
    pytest.param(mail("""
        Voici le fichier journal.

        Le 05/01/2026 à 10:00, ACME Support a écrit :
        > Pourriez-vous nous envoyer le fichier journal ?
        """), "Voici le fichier journal.", id="thunderbird-fr"),
    pytest.param(mail(f"""
        On 1/5/26 10:00 AM, ACME Support wrote:
        > Could you send us the serial number?
        >
        > ACME Support

        Sure, it is CN-4711-XY.

        {SIG}
        Jane Doe
        """), "Sure, it is CN-4711-XY.", id="thunderbird-bottom-post-with-signature"),

    # -- Outlook ----------------------------------------------------------------
    pytest.param(mail("""
        Thanks, will try tomorrow.

        ________________________________
        From: ACME Support <support@acme.example>
        Sent: Monday, January 5, 2026 10:00 AM
        To: Jane Doe <jane@example.org>
        Cc: IT Desk <it@example.org>
        Subject: RE: [MG#100327] Printer

        Please restart the printer.
        """), "Thanks, will try tomorrow.", id="outlook-en"),
    pytest.param(mail("""
        Approved.

        -----Original Message-----
        From: ACME Support [mailto:support@acme.example]
        Sent: Monday, January 05, 2026 10:00 AM
        To: Jane Doe
        Subject: [MG#100327] Quote for new toner

        Please approve the quote.
        """), "Approved.", id="outlook-original-message"),
    pytest.param(mail("""
        Hallo,

        der Drucker läuft wieder. Vielen Dank!

        Mit freundlichen Grüßen
        Max Mustermann

        -----Ursprüngliche Nachricht-----
        Von: ACME Support <support@acme.example>\x20
        Gesendet: Montag, 5. Januar 2026 10:00
        An: Max Mustermann <max@example.de>
        Betreff: [MG#100327] Drucker

        Bitte starten Sie den Drucker neu.
        """), "Hallo,\n\nder Drucker läuft wieder. Vielen Dank!\n\nMit freundlichen Grüßen\nMax Mustermann",
        id="outlook-de-original-message"),
    pytest.param(mail("""
        Erledigt.

        ________________________________
        Von: ACME Support <support@acme.example>
        Gesendet: Montag, 5. Januar 2026 10:00
        An: Max Mustermann <max@example.de>
        Cc: Erika Musterfrau <erika@example.de>
        Betreff: AW: [MG#100327] Drucker

        Bitte starten Sie den Drucker neu.
        """), "Erledigt.", id="outlook-de-header-block"),
    pytest.param(mail("""
        Merci, c'est réglé.

        ________________________________
        De\u00a0: ACME Support <support@acme.example>
        Envoyé\u00a0: lundi 5 janvier 2026 10:00
        À\u00a0: Marie Dupont <marie@example.fr>
        Objet\u00a0: RE: [MG#100327] Imprimante

        Veuillez redémarrer l'imprimante.
        """), "Merci, c'est réglé.", id="outlook-fr-header-block"),
    pytest.param(mail("""
        Gracias, ya está resuelto.

        De: ACME Support <support@acme.example>
        Enviado: lunes, 5 de enero de 2026 10:00
        Para: Juan García <juan@example.es>
        Asunto: RE: [MG#100327] Impresora

        Por favor, reinicie la impresora.
        """), "Gracias, ya está resuelto.", id="outlook-es-header-block"),
    pytest.param(mail("""
        Добрый день!
        Принтер снова работает, спасибо.

        С уважением,
        Иван Петров

        ________________________________
        От: Служба поддержки ACME <support@acme.example>
        Отправлено: 5 января 2026 г. 10:00
        Кому: Иван Петров <ivan@example.ru>
        Тема: [MG#100327] Принтер

        Попробуйте перезапустить принтер.
        """), "Добрый день!\nПринтер снова работает, спасибо.\n\nС уважением,\nИван Петров",
        id="outlook-ru-header-block"),
    pytest.param(mail("""
        سلام، فاکتور را پیوست کردم.

        \u200fاز: پشتیبانی ACME <support@acme.example>
        \u200fارسال شده: دوشنبه، ۵ ژانویه ۲۰۲۶ ۱۰:۰۰
        \u200fبه: علی رضایی <ali@example.ir>
        \u200fموضوع: [MG#100327] فاکتور

        لطفاً فاکتور را ارسال کنید.
        """), "سلام، فاکتور را پیوست کردم.", id="outlook-fa-header-block"),
    pytest.param(mail("""
        Thanks, will try tomorrow.

        Get Outlook for Android<https://aka.ms/AAb9ysg>

        ________________________________
        From: ACME Support <support@acme.example>
        Sent: Monday, January 5, 2026 10:00:12 AM
        To: Jane Doe <jane@example.org>
        Subject: [MG#100327] Printer

        Please restart the printer.
        """), "Thanks, will try tomorrow.", id="outlook-android-footer"),

    # -- > quoting and inline answers ------------------------------------------
    pytest.param(mail("""
        Done.

        > Please restart the printer.
        > > Which printer is it?
        > > > The printer is broken.
        """), "Done.", id="trailing-quote-nested-no-attribution"),
    pytest.param(mail("""
        On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example> wrote:
        > Which model is it?

        HP LaserJet 4000.

        > And where is it?

        Second floor, room 204.

        > Kind regards,
        > ACME Support
        """), ("On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example> wrote:\n"
               "> Which model is it?\n\nHP LaserJet 4000.\n\n> And where is it?\n\n"
               "Second floor, room 204."), id="inline-answers-below-attribution"),
    pytest.param(mail("""
        Answers below.

        On 1/5/26 10:00 AM, ACME Support wrote:
        > Which model is it?
        HP LaserJet 4000.
        > Where is it?
        Room 204.
        >
        > ACME Support
        """), ("Answers below.\n\nOn 1/5/26 10:00 AM, ACME Support wrote:\n> Which model is it?\n"
               "HP LaserJet 4000.\n> Where is it?\nRoom 204."), id="inline-answers-after-top-text"),

    # -- (3) signatures and mobile footers ---------------------------------------
    pytest.param(mail(f"""
        The invoice number is 2026-0042.

        {SIG}
        Jane Doe | Example Ltd. | +1 555 0100
        """), "The invoice number is 2026-0042.", id="signature-dash-dash-space"),
    pytest.param(mail("""
        The invoice number is 2026-0042.
        --
        Jane Doe
        """), "The invoice number is 2026-0042.", id="signature-dash-dash"),
    pytest.param(mail("""
        Thanks

        --
        Jane

        On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example> wrote:
        > Please restart the printer.
        """), "Thanks", id="signature-above-attribution"),
    pytest.param(mail("""
        Thanks, that worked.

        On 1/5/26 10:00 AM, ACME Support wrote:
        > Please restart the printer.

        Sent from my iPhone
        """), "Thanks, that worked.", id="footer-below-the-quote"),
    pytest.param("Merci beaucoup.\n\nEnvoyé de mon iPhone\n", "Merci beaucoup.", id="footer-fr"),
    pytest.param("Muchas gracias.\n\nEnviado desde mi iPhone", "Muchas gracias.", id="footer-es"),
    pytest.param("Большое спасибо.\n\nОтправлено с iPhone\n", "Большое спасибо.", id="footer-ru"),

    # -- text that must survive ------------------------------------------------------
    pytest.param(mail("""
        From: my point of view the invoice is wrong.
        We paid on 5 Jan 2026, see the attached statement.
        """), "From: my point of view the invoice is wrong.\nWe paid on 5 Jan 2026, see the attached statement.",
        id="from-at-start-of-a-sentence"),
    pytest.param(mail("""
        Please change my booking:
        From: Berlin
        To: Paris
        Date: 5 January 2026

        Thanks, Jane
        """), "Please change my booking:\nFrom: Berlin\nTo: Paris\nDate: 5 January 2026\n\nThanks, Jane",
        id="header-like-lines-without-subject"),
    pytest.param(mail("""
        In his mail of 5 January your colleague wrote:

        > Restart the printer.

        I did, and it still fails with error 0x2.
        """), ("In his mail of 5 January your colleague wrote:\n\n> Restart the printer.\n\n"
               "I did, and it still fails with error 0x2."), id="wrote-in-a-sentence"),
    pytest.param(mail("""
        I did what you asked.
        On the ticket page your colleague wrote:
        restart the printer and wait ten minutes.
        I did, and nothing changed.
        """), ("I did what you asked.\nOn the ticket page your colleague wrote:\n"
               "restart the printer and wait ten minutes.\nI did, and nothing changed."),
        id="on-wrote-line-without-date-or-address"),
    pytest.param(mail("""
        On Monday the technician wrote: everything is fine. It is not.
        Use --force only if asked -- it deletes the queue.
        """), ("On Monday the technician wrote: everything is fine. It is not.\n"
               "Use --force only if asked -- it deletes the queue."), id="wrote-and-dashes-mid-line"),
    pytest.param(mail("""
        Please look at the mail below from our customer.

        ---------- Forwarded message ---------
        From: Max Mustermann <max@example.de>
        Date: Mon, Jan 5, 2026 at 10:00 AM
        Subject: Drucker defekt
        To: <office@example.org>

        Der Drucker im 2. Stock druckt nicht mehr.
        """), ("Please look at the mail below from our customer.\n\n---------- Forwarded message ---------\n"
               "From: Max Mustermann <max@example.de>\nDate: Mon, Jan 5, 2026 at 10:00 AM\n"
               "Subject: Drucker defekt\nTo: <office@example.org>\n\n"
               "Der Drucker im 2. Stock druckt nicht mehr."), id="gmail-forward-is-content"),
    pytest.param("Sent from my desk, because my phone is broken.\n",
                 "Sent from my desk, because my phone is broken.", id="sent-from-my-in-a-sentence"),

    # -- edges -------------------------------------------------------------------------
    pytest.param(mail("""
        On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example> wrote:
        > Please restart the printer.
        """), ("On Mon, Jan 5, 2026 at 10:00 AM ACME Support <support@acme.example> wrote:\n"
               "> Please restart the printer."), id="all-quoted-returns-original"),
    pytest.param("Fixed.\r\n\r\nOn 1/5/26 10:00 AM, ACME Support wrote:\r\n> Restart it.\r\n", "Fixed.",
                 id="crlf-line-endings"),
    pytest.param("\n\n   \n", "", id="blank"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_strip_quoted(text, expected):
    assert strip_quoted(text) == expected


@pytest.mark.parametrize("text, expected", CASES)
def test_stripping_twice_changes_nothing(text, expected):
    assert strip_quoted(strip_quoted(text)) == expected


# Reply bodies from other projects' test suites, read from ../shared/corpus
# (see its README.md and MANIFEST.tsv). The expected texts are ours: where the
# upstream suites keep a signature or a "Sent from my iPhone" footer, we drop it.
#   email-reply-parser__*: zapier/email-reply-parser, test/emails/, MIT License.
#   talon__*: mailgun/talon, tests/fixtures/, Apache License 2.0
#   (https://www.apache.org/licenses/LICENSE-2.0).
RIAK_ANSWER = (
    "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:\n> Hi folks\n> \n"
    "> What is the best way to clear a Riak bucket of all key, values after \n> running a test?\n"
    "> I am currently using the Java HTTP API.\n\n"
    "You can list the keys for the bucket and call delete for each. Or if you\n"
    "put the keys (and kept track of them in your test) you can delete them\n"
    "one at a time (without incurring the cost of calling list first.)\n\nSomething like:\n\n"
    '        String bucket = "my_bucket";\n'
    "        BucketResponse bucketResponse = riakClient.listBucket(bucket);\n"
    "        RiakBucketInfo bucketInfo = bucketResponse.getBucketInfo();\n        \n"
    "        for(String key : bucketInfo.getKeys()) {\n            riakClient.delete(bucket, key);\n"
    "        }\n\n\nwould do it.\n\nSee also \n\nhttp://wiki.basho.com/REST-API.html#Bucket-operations\n\n"
    'which says \n\n"At the moment there is no straightforward way to delete an entire\n'
    "Bucket. There is, however, an open ticket for the feature. To delete all\n"
    "the keys in a bucket, you\u2019ll need to delete them all individually.\"")
TUNNEL = ("On your remote host you can run:\n\n     telnet 127.0.0.1 52698\n\n"
          "This should connect to TextMate (on your Mac, via the tunnel). If that{}\n"
          "fails, the tunnel is not working.")
CORPUS_CASES = [
    ("email-reply-parser__correct_sig.txt", "this is an email with a correct -- signature."),
    ("email-reply-parser__email_1_1.txt",
     "Hi folks\n\nWhat is the best way to clear a Riak bucket of all key, values after \nrunning a test?\n"
     "I am currently using the Java HTTP API.\n\n-Abhishek Kona"),
    ("email-reply-parser__email_1_2.txt", RIAK_ANSWER),
    ("email-reply-parser__email_1_3.txt", "Oh thanks.\n\nHaving the function would be great.\n\n-Abhishek Kona"),
    ("email-reply-parser__email_1_4.txt", "Awesome! I haven't had another problem with it."),
    ("email-reply-parser__email_1_6.txt", "I get proper rendering as well.\n\nSent from a magnificent torch of pixels"),
    ("email-reply-parser__email_1_7.txt", ":+1:"),
    ("email-reply-parser__email_2_1.txt", "Outlook with a reply"),
    ("email-reply-parser__email_2_2.txt", "Outlook with a reply directly above line"),
    ("email-reply-parser__email_2_3.txt", "Outlook with a reply above headers using unusual format"),
    ("email-reply-parser__email_BlackBerry.txt", "Here is another email"),
    ("email-reply-parser__email_bullets.txt",
     "test 2 this should list second\n\nand have spaces\n\nand retain this formatting\n\n\n"
     "   - how about bullets\n   - and another"),
    ("email-reply-parser__email_gmail.txt", "This is a test for inbox replying to a github message."),
    ("email-reply-parser__email_headers_no_delimiter.txt", "And another reply!"),
    ("email-reply-parser__email_iPhone.txt", "Here is another email"),
    ("email-reply-parser__email_multi_word_sent_from_my_mobile_device.txt", "Here is another email"),
    ("email-reply-parser__email_one_is_not_on.txt",
     "Thank, this is really helpful.\n\nOne outstanding question I had:\n\nLocally (on development), when I run..."),
    ("email-reply-parser__email_partial_quote_header.txt", TUNNEL.format(" ")),
    ("email-reply-parser__greedy_on.txt", TUNNEL.format("")),
    ("email-reply-parser__email_sent_from_my_not_signature.txt",
     "Here is another email\n\nSent from my desk, is much easier then my mobile phone."),
    ("email-reply-parser__email_sig_delimiter_in_middle_of_line.txt",
     "Hi there!\n\nStuff happened.\n\nAnd here is a fix -- this is not a signature.\n\nkthxbai"),
    ("email-reply-parser__pathological.txt",
     "I think you're onto something. I will try to fix the problem as soon as I\nget back to a computer."),
    ("email-reply-parser__email_1_8.txt",
     "On Tue, Apr 29, 2014 at 4:22 PM, Example Dev <sugar@example.com>wrote:\n\n"
     "> okay.  Well, here's some stuff I can write.\n>\n"
     "> And if I write a 2 second line you and maybe reply under this?\n>\n"
     "> Or if you didn't really feel like it, you could reply under this line.Or\n"
     "> if you didn't really feel like it, you could reply under this line. Or if\n"
     "> you didn't really feel like it, you could reply under this line. Or if you\n"
     "> didn't really feel like it, you could reply under this line.\n>\n\n"
     "I will reply under this one\n\n>\n> okay?\n>\n\nand under this."),
    ("talon__android.eml", "Hello"),  # Russian "... написал:" wrapped over two lines
    ("talon__aol.eml", "Hello"),
    ("talon__apple_mail.eml", "Hello"),
    ("talon__apple_mail_2.eml", "Hello"),
    ("talon__comcast.eml", "Hello"),
    ("talon__gmail.eml", "Hello"),
    ("talon__hotmail.eml", "Hello"),
    ("talon__iphone.eml", "Hello"),
    ("talon__outlook.eml", "Hello"),
    ("talon__sparrow.eml", "Hello"),
    ("talon__thunderbird.eml", "Hello"),
    ("talon__yahoo.eml", "Hello"),
    ("talon__reply-quotations-share-block.eml",
     "Hi Katharine.\u00a0 Sounds great.\u00a0 Are there and dietry restrictions or things your husband "
     "does/doesn't like to eat?\u00a0 Would you like to do a few hors d oeuvres and then a\u00a03 or "
     "4\u00a0course dinner?\u00a0 Let me know what you think will work best and I will start working "
     "on a menu and proposal.\u00a0 Thanks so much and look forward to hearing from you soon.\n\u00a0\nJoe XXX"),
]


def corpus_text(name: str) -> str:
    raw = (CORPUS / name).read_bytes()
    if name.endswith(".eml"):
        return message_from_bytes(raw, policy=policy.default).get_body(("plain",)).get_content()
    return raw.decode("utf-8")


@pytest.mark.parametrize("name, expected", CORPUS_CASES, ids=[name for name, _ in CORPUS_CASES])
def test_strip_quoted_real_world(name, expected):
    assert strip_quoted(corpus_text(name)) == expected


@pytest.mark.parametrize("line, matches", [
    (SEP_EN, True),
    (f"> {SEP_FA}", True),
    (f">>  {SEP_KA}  ", True),
    ("##--##", True),
    ("Please type your reply above this line", False),
    (f"Note: {SEP_EN}", False),
    ("## Heading ##", False),
])
def test_separator_line(line, matches):
    assert bool(SEPARATOR.match(line)) is matches


def test_every_attribution_pattern_ends_in_a_colon():
    """quotes._is_attribution tries the patterns only on text ending in ":" (on the
    corpus that made quote cutting ten times faster): a pattern that could match
    anything else would silently never be tried."""
    from mailgate.mail.attribution import ATTRIBUTIONS

    assert all(p.pattern.endswith(":$") for p in ATTRIBUTIONS)
