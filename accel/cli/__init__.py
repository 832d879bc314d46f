"""The ``accel`` command (the top layer: may import every other package).

The parser and the error policy (:mod:`.main`: the only place that knows about exit codes), one module per
sub-command (:mod:`.commands`), their option types (:mod:`.options`), the checks of users' input and output
files (:mod:`.files`), human tables, JSON and progress (:mod:`.report`), plots (:mod:`.plots`) and the report
folder of ``accel run`` (:mod:`.network_report`).
"""
