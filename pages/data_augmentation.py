"""Data & augmentation page (placeholder until its issue lands)."""

import streamlit as st

st.title("Data & augmentation")
st.info("This page is being built.", icon=":material/construction:")
