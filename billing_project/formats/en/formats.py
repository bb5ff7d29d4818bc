# Django's default display of a DateTimeField (admin columns, read-only fields, `{{ value }}`)
# says the zone, so an operator never has to guess whether "6:05 p.m." is UTC.
# https://docs.djangoproject.com/en/5.2/topics/i18n/formatting/#creating-custom-format-files
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
