"""Conv calculator page (placeholder until its issue lands)."""

import streamlit as st

st.title("Conv calculator")
st.info("This page is being built.", icon=":material/construction:")
