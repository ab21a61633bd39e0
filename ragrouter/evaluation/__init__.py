"""Out-of-fold scoring, routing metrics (metrics.py) and reports (report.py).

Nothing is re-exported here so that importing one module does not pull in the others
(report.py imports matplotlib, out_of_fold.py the routers).
"""
