"""Forecasting and prediction: ``forecast()`` and the design documents' predictors.

- ``forecast``: the combination behind ``forecast(y, horizon)`` (``StatisticalForecaster``).
- ``season``, ``smoothing``, ``naive``, ``intervals``: its parts.
- ``arima``, ``lstm``: the other models; ``forecaster``: ``TimeSeriesForecaster`` over them.
- ``predictors``: ``ARIMAPredictor`` and ``PerformancePredictor`` on ``MLMetric`` series.
- ``analyzer``: ``PredictiveAnalyzer`` (trend, seasonality, change points).
- ``capacity``: when a series crosses a threshold (``time_to_threshold``, ``CapacityPlanner``).
"""
