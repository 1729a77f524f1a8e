"""Two-way referral (双向转诊): the referral Task's workflow as data, the pre-arrival summary, the
deductible a referred admission pays and the per-month referral counts.

``engine.referral.service.Referrals`` (``Engine.referrals``) is the write hook and the rows;
``engine.referral.summary`` builds the document Bundle; ``engine.referral.report`` the counts.
"""
