" aec's autoencoder specs: *.ae files (aec(5)). The syntax is generated
" (syntax/ae.vim, by aecgen from the checker's tables).
autocmd BufRead,BufNewFile *.ae setfiletype ae
