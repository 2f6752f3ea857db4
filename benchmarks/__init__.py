"""Benchmarks of botsession against raw aiohttp-socks, aiogram's own session and PTB."""
