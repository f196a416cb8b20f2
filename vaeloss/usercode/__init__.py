"""The user's code, read and loaded by one set of rules for ``check`` and ``audit``:

* :mod:`~vaeloss.usercode.target`: what ``FILE[:NAME]`` or ``pkg.module[:NAME]`` names;
* :mod:`~vaeloss.usercode.sourcefile`: a ``.py`` file or a notebook's code cells as Python text;
* :mod:`~vaeloss.usercode.loader`: loading it without running it as a script;
* :mod:`~vaeloss.usercode.sandbox`: no file writes, processes or network while it runs;
* :mod:`~vaeloss.usercode.construct`: building its classes from ``NAME=VALUE`` arguments;
* :mod:`~vaeloss.usercode.classes`: a class named ``FILE:Class``.

A file that cannot be read or loaded is a :class:`~vaeloss.errors.UserCodeError`.
"""
