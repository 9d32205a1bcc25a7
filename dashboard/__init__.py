"""Streamlit helpers shared by `app.py` and `pages/` (UI only; the logic lives in `inferscale`)."""
