"""Django's date formats for the operators' pages (the admin), where they differ from Django's."""
