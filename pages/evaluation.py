"""Evaluation page (placeholder until its issue lands)."""

import streamlit as st

st.title("Evaluation")
st.info("This page is being built.", icon=":material/construction:")
