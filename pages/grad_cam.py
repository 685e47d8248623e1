"""Grad-CAM page (placeholder until its issue lands)."""

import streamlit as st

st.title("Grad-CAM")
st.info("This page is being built.", icon=":material/construction:")
