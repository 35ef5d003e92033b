"""Developer tools shipped with PhantomEx; product code never imports them."""
