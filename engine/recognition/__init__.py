"""Mutual recognition (检查检验结果互认): rules as data, the decision, the result index, flags and reports.

``engine.recognition.decision.find_recognisable`` is the rule of DOMAIN.md as a pure function;
``engine.recognition.service.Recognition`` (``Engine.recognition``) applies it to what is stored.
"""
